"""Reading and running .tflite files: one flatbuffer reader (inline and offset buffers), the normalizer of
old-style float files, weight statistics, the audit of ops and bytes by dtype, and the host LiteRT runtime
(runtime.py: interpreters, (de)quantized batched inference; batching.py: whether a model's batch can grow)."""
