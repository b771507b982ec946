"""Reading .tflite files: one flatbuffer reader (inline and offset buffers), the normalizer of
old-style float files, weight statistics, and the audit of ops and bytes by dtype."""
