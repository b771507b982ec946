"""Tests for the benchmark_model log parser: real logs (fixtures) and logs built from the tool's print statements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.devices.android.benchmark_log import BenchmarkLogError, parse_benchmark_log, parse_benchmark_logs
from harness.errors import HarnessError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "benchmark_model_logs"
FIXTURE_LOGS = sorted(FIXTURES.glob("*.log"))


def fixture(prefix: str) -> str:
    (path,) = FIXTURES.glob(f"{prefix}_*.log")
    return path.read_text()


# ----------------------------------------------------------------------------------------------------------------
# A log in today's format, built from the print statements of LiteRT's benchmark_model.cc,
# benchmark_tflite_model.cc, the delegate providers, profile_summary_formatter.cc and stats_calculator.cc.


def _field(value: object, width: int) -> str:
    """One column as stats_calculator's InitField writes it: a tab, then right-aligned."""
    return "\t" + str(value).rjust(width)


def _metric_table(title: str, rows: list[tuple[str, float, float, float, float, float, int, str]]) -> str:
    """A "Run Order" / "Top by Computation Time" table (current layout, no [start] column)."""
    header = "".join(_field(h, w) for h, w in [("[node type]", 40), ("[first]", 9), ("[avg ms]", 9), ("[%]", 8),
                                                ("[cdf%]", 8), ("[mem KB]", 10), ("[times called]", 9)])
    lines = [f"============================== {title} ==============================", header + "\t[Name]"]
    for node_type, first, avg, pct, cdf, mem, called, name in rows:
        lines.append(_field(node_type, 40) + _field(f"{first:.3f}", 9) + _field(f"{avg:.3f}", 9)
                     + _field(f"{pct:.3f}", 7) + "%" + _field(f"{cdf:.3f}", 7) + "%"
                     + _field(f"{mem:.3f}", 10) + _field(called, 9) + "\t" + name)
    return "\n".join(lines) + "\n\n"


def _type_table(rows: list[tuple[str, int, float, float, float, float, int]]) -> str:
    """The "Summary by node type" table."""
    header = "".join(_field(h, w) for h, w in [("[Node type]", 40), ("[count]", 9), ("[avg ms]", 10), ("[avg %]", 11),
                                                ("[cdf %]", 11), ("[mem KB]", 10), ("[times called]", 10)])
    lines = [f"Number of nodes executed: {sum(r[1] for r in rows)}",
             "============================== Summary by node type ==============================", header]
    for node_type, count, avg, pct, cdf, mem, called in rows:
        lines.append(_field(node_type, 40) + _field(count, 9) + _field(f"{avg:.3f}", 10)
                     + _field(f"{pct:.3f}", 10) + "%" + _field(f"{cdf:.3f}", 10) + "%"
                     + _field(f"{mem:.3f}", 10) + _field(called, 9))
    return "\n".join(lines) + "\n\n"


PRIMARY_ROWS = [
    ("TfLiteXNNPackDelegate", 6.911, 6.802, 85.884, 85.884, 0.0, 1, "[MobilenetV2/expanded_conv/...]:63"),
    ("MEAN", 0.412, 0.395, 4.987, 90.871, 0.0, 1, "MobilenetV2/Logits/AvgPool"),
    ("FULLY_CONNECTED", 0.702, 0.689, 8.699, 99.570, 0.0, 1, "MobilenetV2/Logits/Conv2d_1c_1x1/BiasAdd"),
    ("SOFTMAX", 0.036, 0.034, 0.429, 100.000, 0.0, 1, "Identity"),
]
PRIMARY_TYPES = [
    ("TfLiteXNNPackDelegate", 1, 6.802, 85.884, 85.884, 0.0, 1),
    ("FULLY_CONNECTED", 1, 0.689, 8.699, 94.583, 0.0, 1),
    ("MEAN", 1, 0.395, 4.987, 99.570, 0.0, 1),
    ("SOFTMAX", 1, 0.034, 0.429, 100.000, 0.0, 1),
]
INIT_ROWS = [
    ("ModifyGraphWithDelegate", 30.512, 30.512, 93.077, 93.077, 10456.0, 1, "ModifyGraphWithDelegate/0"),
    ("AllocateTensors", 2.269, 2.269, 6.923, 100.000, 1024.0, 2, "AllocateTensors/0"),
]
OTHER_ROWS = [("WHILE", 9.9, 9.9, 100.0, 100.0, 0.0, 1, "while")]

# (level, message); a message may span lines, only its first line carries the logging prefix.
CURRENT_MESSAGES = [
    ("INFO", "STARTING!"),
    ("INFO", "Log parameter values verbosely: [0]"),
    ("INFO", "Min num runs: [100]"),
    ("INFO", "Min warmup runs: [5]"),
    ("INFO", "Num threads: [4]"),
    ("INFO", "Report the peak memory footprint: [1]"),
    ("INFO", "Graph: [/data/local/tmp/mobilenet_v2_int8.tflite]"),
    ("INFO", "Signature to run: []"),
    ("INFO", "Enable op profiling: [1]"),
    ("INFO", "#threads used for CPU inference: [4]"),
    ("INFO", "Use xnnpack: [1]"),
    ("INFO", "Loaded model /data/local/tmp/mobilenet_v2_int8.tflite"),
    ("INFO", "Initialized TensorFlow Lite runtime."),
    ("INFO", "Created TensorFlow Lite XNNPACK delegate for CPU."),
    ("INFO", "XNNPACK delegate created."),
    ("VERBOSE", "Replacing 63 out of 66 node(s) with delegate (TfLiteXNNPackDelegate) node, "
                "yielding 3 partitions for the whole graph."),
    ("INFO", "Explicitly applied XNNPACK delegate, and the model graph will be partially executed by the delegate "
             "w/ 2 delegate kernels."),
    ("INFO", "The input model file size (MB): 3.57776"),
    ("INFO", "Initialized session in 41.118ms."),
    ("INFO", "Running benchmark for at least 5 iterations and at least 0.5 seconds but terminate if exceeding "
             "150 seconds."),
    ("INFO", "count=61 first=9950 curr=8101 min=7980 max=9950 avg=8197.43 std=262 p5=7995 median=8150 p95=8602\n"),
    ("INFO", "Running benchmark for at least 100 iterations and at least 1 seconds but terminate if exceeding "
             "150 seconds."),
    ("INFO", "count=123 first=8120 curr=8066 min=7912 max=9874 avg=8132.05 std=201 p5=7930 median=8101 p95=8390\n"),
    ("INFO", "Inference timings in us: Init: 41118, First inference: 9950, Warmup (avg): 8197.43, "
             "Inference (avg): 8132.05"),
    ("INFO", "Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to "
             "the actual memory footprint of the model at runtime. Take the information at your discretion."),
    ("INFO", "Memory footprint delta from the start of the tool (MB): init=6.83594 overall=14.4531"),
    ("INFO", "Overall peak memory footprint (MB) via periodic monitoring: 18.1875"),
    ("INFO", "Memory status at the end of exeution:"),
    ("INFO", "- VmRSS              : 25 MB"),
    ("INFO", "+ RssAnnon           : 12 MB"),
    ("INFO", "+ RssFile + RssShmem : 13 MB"),
    ("INFO", "Profiling Info for Benchmark Initialization:\n"
             + _metric_table("Run Order", INIT_ROWS) + _metric_table("Top by Computation Time", INIT_ROWS)
             + _type_table([("ModifyGraphWithDelegate", 1, 30.512, 93.077, 93.077, 10456.0, 1),
                            ("AllocateTensors", 1, 2.269, 6.923, 100.0, 1024.0, 2)])
             + "Timings (microseconds): count=1 curr=32781\nMemory (bytes): count=0\n2 nodes observed\n\n"),
    ("INFO", "Operator-wise Profiling Info for Regular Benchmark Runs:\n"
             "Primary graph (name: serving_default) profile:\n"
             + _metric_table("Run Order", PRIMARY_ROWS) + _metric_table("Top by Computation Time", PRIMARY_ROWS)
             + _type_table(PRIMARY_TYPES)
             + "Timings (microseconds): count=123 first=7901 curr=7850 min=7702 max=9650 avg=7920.4 std=195\n"
             + "Memory (bytes): count=0\n4 nodes observed\n\n"
             + "Subgraph (index: 1, name: while_body) profile:\n"
             + _metric_table("Run Order", OTHER_ROWS) + _type_table([("WHILE", 1, 9.9, 100.0, 100.0, 0.0, 1)])
             + "Subgraph (index: 1, name: while_body) Timings (microseconds): count=123 curr=9900\n"
             + "Memory (bytes): count=0\n1 nodes observed\n\n"
             + "Delegate internal: \n"
             + _metric_table("Run Order", [("Convolution (NHWC, QC8) IGEMM", 0.5, 0.5, 7.3, 7.3, 0.0, 1, "Conv")])
             + "Timings (microseconds): count=123 curr=6800\nMemory (bytes): count=0\n1 nodes observed\n"),
]


def render(messages: list[tuple[str, str]], prefix=None) -> str:
    """The log as printed; `prefix(level)` is put before every line, or before each message's first line
    (the TFLite minimal logger) when prefix is None."""
    lines = []
    for level, message in messages:
        for index, line in enumerate(message.split("\n")):
            if prefix is not None:
                lines.append(prefix(level) + line)
            else:
                lines.append(f"{level}: {line}" if index == 0 else line)
    return "\n".join(lines) + "\n"


CURRENT_LOG = render(CURRENT_MESSAGES)


# ----------------------------------------------------------------------------------------------------------------
# the real logs


def test_fixture_01_yolov5s_three_runs_and_a_failed_nnapi_run():
    text = fixture("01")
    runs = parse_benchmark_logs(text)
    assert [run.timings.avg_us for run in runs] == [249684, 156669, 95788.3]
    assert [run.timings.count for run in runs] == [50, 50, 50]
    assert [run.timings.init_us for run in runs] == [16242, 404292, 1779]
    assert [run.timings.first_us for run in runs] == [360262, 188086, 152949]
    assert [run.timings.warmup_avg_us for run in runs] == [304586, 175313, 110690]
    assert [(run.timings.min_us, run.timings.max_us, run.timings.std_us) for run in runs] == [
        (247067, 254474, 1442), (149738, 161935, 2352), (93066, 99490, 1284)]
    assert [(run.memory.init_mb, run.memory.overall_mb) for run in runs] == [
        (4.92969, 138.809), (6.80469, 61.0078), (5.15625, 36.9883)]
    assert {run.memory.footprint_label for run in runs} == {"Peak memory footprint"}
    last = parse_benchmark_log(text)
    assert last == runs[-1]
    assert last.to_dict()["timings"]["avg"] == pytest.approx(95.7883)
    assert last.complete and last.errors == ()

    failed_run = text[text.index("# Failure case"):]
    with pytest.raises(BenchmarkLogError) as error:
        parse_benchmark_log(failed_run)
    message = str(error.value)
    assert "Inference timings in us" in message
    for line in ("NN API returned error ANEURALNETWORKS_OP_FAILED", "Node number 248 (TfLiteNnapiDelegate) failed",
                 "Restored original execution plan after delegate application failure.",
                 "Failed to apply NNAPI delegate.", "Benchmarking failed."):
        assert line in message


def test_fixture_03_info_prefixed_desktop_xnnpack():
    log = parse_benchmark_log(fixture("03"))
    t = log.timings
    assert (t.count, t.warmup_count) == (74, 37)
    assert (t.avg_us, t.std_us, t.min_us, t.max_us) == (13520.2, 470, 13105, 15765)
    assert (t.init_us, t.first_us, t.warmup_avg_us) == (12750, 14744, 13764.3)
    assert log.to_dict()["timings"]["init"] == pytest.approx(12.75)
    assert log.model_size_mb == 16.9008
    assert log.parameters == {"verbose": "0", "graph": "mobilenet_v1_1.0_224.tflite", "signature_to_run_for": ""}
    assert log.delegates.created == ("Created TensorFlow Lite XNNPACK delegate for CPU",)
    assert log.memory.init_mb is None and log.memory.overall_mb is None  # the excerpt ends before them
    assert log.complete


def test_fixture_04_android_op_profiling_tf23():
    log = parse_benchmark_log(fixture("04"))
    t = log.timings
    assert (t.count, t.warmup_count, t.avg_us, t.std_us) == (50, 15, 33209.4, 450)
    assert (t.init_us, t.first_us, t.warmup_avg_us) == (855, 49060, 34825.1)
    assert (log.memory.init_mb, log.memory.overall_mb) == (0, 12.8672)
    assert log.memory.footprint_label == "Peak memory footprint"
    assert log.parameters["num_threads"] == "4"
    assert log.parameters["enable_op_profiling"] == "1"
    assert log.parameters["graph"] == "/data/local/tmp/espcn_harmonic_2x_slim_w_cl.tflite"
    assert log.model_size_mb == 0.004448
    assert log.op_profile is None  # the excerpt ends inside the initialisation profile
    assert log.init_op_profile is not None and log.init_op_profile.tables == {"run_order": ()}


def test_fixture_06_chromeos_cpu_then_gpu_with_peak_memory():
    cpu, gpu = parse_benchmark_logs(fixture("06"))
    assert (cpu.timings.count, cpu.timings.avg_us, cpu.timings.std_us) == (1061, 56265.8, 982)
    assert (cpu.timings.init_us, cpu.timings.first_us, cpu.timings.warmup_avg_us) == (3337, 81913, 58984.7)
    assert cpu.memory.peak_mb == 93.2383
    assert cpu.delegates.nodes_by_delegate == {"TfLiteXNNPackDelegate": 58}
    (part,) = cpu.delegates.partitions
    assert (part.nodes_replaced, part.nodes_total, part.partitions, part.scope) == (58, 58, 1, "whole graph")

    assert (gpu.timings.count, gpu.timings.warmup_count, gpu.timings.avg_us) == (1694, 13, 35134.9)
    assert (gpu.timings.init_us, gpu.timings.first_us) == (842225, 115098)
    assert gpu.memory.peak_mb == 74.6641
    assert gpu.delegates.nodes_by_delegate == {"TfLiteGpuDelegateV2": 58}
    assert [(a.name, a.coverage, a.kernels) for a in gpu.delegates.applied] == [("GPU", "complete", 1)]
    assert parse_benchmark_log(fixture("06")) == gpu


def test_fixture_07_old_profiling_tables_and_legacy_summary():
    log = parse_benchmark_log(fixture("07"))
    t = log.timings
    assert (t.avg_us, t.init_us, t.warmup_avg_us) == (79760.9, 38467, 83235)
    assert t.count is None and t.first_us is None  # no run lines in the excerpt
    profile = log.op_profile
    assert profile is not None
    assert [row["node_type"] for row in profile.tables["run_order"]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"]
    assert profile.top_by_computation_time == ({
        "node_type": "CONV_2D", "start_ms": 19.352, "first_ms": 6.652, "avg_ms": 6.652, "percent": 0.167,
        "cdf_percent": 0.167, "mem_kb": 0.0, "times_called": 0,
        "name": "[MobilenetV1/MobilenetV1/Conv2d_3_pointwise/Relu6]"},)
    assert [(r["node_type"], r["count"], r["avg_ms"], r["avg_percent"]) for r in profile.summary_by_node_type] == [
        ("CONV_2D", 15, 1.406, 89.27), ("DEPTHWISE_CONV_2D", 13, 0.169, 10.73), ("SOFTMAX", 1, 0.0, 0.0),
        ("RESHAPE", 1, 0.0, 0.0), ("AVERAGE_POOL_2D", 1, 0.0, 0.0)]
    assert profile.summary_by_node_type[1]["cdf_percent"] == 100.0
    assert (profile.nodes_executed, profile.nodes_observed) == (31, 31)
    assert profile.run_total is not None
    assert (profile.run_total.count, profile.run_total.avg_us, profile.run_total.std_us) == (50, 79732, 1929)


def test_fixture_08_legacy_no_stats_summary():
    log = parse_benchmark_log(fixture("08"))
    t = log.timings
    assert (t.avg_us, t.init_us, t.warmup_avg_us) == (479385, 38631, 581397)
    assert (t.count, t.std_us, t.min_us, t.max_us) == (50, 3728, 470353, 487364)
    assert (t.warmup_count, t.first_us) == (1, 581397)  # "count=1 curr=581397": the one warm-up run
    assert log.parameters["num_runs"] == "50"
    assert log.parameters["warmup_runs"] == "1"
    assert log.parameters["use_nnapi"] == "0"
    assert log.parameters["input_layer_shape"] == "1,16,19,26:1:1,2048:1,2048"
    assert log.errors == ()


@pytest.mark.parametrize("path", FIXTURE_LOGS, ids=lambda p: p.name[:2])
def test_every_fixture_gives_strict_json(path):
    for log in parse_benchmark_logs(path.read_text()):
        json.dumps(log.to_dict(), allow_nan=False)


# ----------------------------------------------------------------------------------------------------------------
# today's format


def test_current_format_timings_memory_parameters_and_delegates():
    log = parse_benchmark_log(CURRENT_LOG)
    assert log.complete and log.errors == ()
    timings = log.to_dict()["timings"]
    expected_ms = {"count": 123, "warmup_count": 61, "avg": 8.13205, "std": 0.201, "min": 7.912, "max": 9.874,
                   "init": 41.118, "first": 9.95, "warmup_avg": 8.19743, "p5": 7.93, "median": 8.101, "p95": 8.39}
    assert {key: timings[key] for key in expected_ms} == pytest.approx(expected_ms)
    assert timings["raw_us"]["avg"] == 8132.05
    assert log.memory.to_dict() == {
        "init_mb": 6.83594, "overall_mb": 14.4531,
        "footprint_label": "Memory footprint delta from the start of the tool", "peak_mb": 18.1875,
        "vm_rss_mb": 25, "rss_anon_mb": 12, "rss_file_shmem_mb": 13,
        "max_rss_mb": None, "heap_total_mb": None, "heap_in_use_mb": None}
    assert log.parameters == {
        "verbose": "0", "num_runs": "100", "warmup_runs": "5", "num_threads": "4",
        "report_peak_memory_footprint": "1", "graph": "/data/local/tmp/mobilenet_v2_int8.tflite",
        "signature_to_run_for": "", "enable_op_profiling": "1", "use_xnnpack": "1"}
    assert log.model_size_mb == 3.57776
    delegates = log.to_dict()["delegates"]
    assert delegates["partitions"] == [{"delegate": "TfLiteXNNPackDelegate", "nodes_replaced": 63, "nodes_total": 66,
                                        "partitions": 3, "scope": "whole graph"}]
    assert delegates["nodes_by_delegate"] == {"TfLiteXNNPackDelegate": 63}
    assert delegates["applied"] == [{"name": "XNNPACK", "coverage": "partial", "kernels": 2}]
    assert delegates["created"] == ["Created TensorFlow Lite XNNPACK delegate for CPU", "XNNPACK delegate created"]
    assert delegates["failures"] == []


def test_current_format_op_profile_of_the_primary_graph_only():
    log = parse_benchmark_log(CURRENT_LOG)
    profile = log.to_dict()["op_profile"]
    assert [row["node_type"] for row in profile["run_order"]] == [r[0] for r in PRIMARY_ROWS]
    assert profile["top_by_computation_time"][0] == {
        "node_type": "TfLiteXNNPackDelegate", "first_ms": 6.911, "avg_ms": 6.802, "percent": 85.884,
        "cdf_percent": 85.884, "mem_kb": 0.0, "times_called": 1, "name": "[MobilenetV2/expanded_conv/...]:63"}
    assert profile["summary_by_node_type"] == [
        {"node_type": t, "count": c, "avg_ms": a, "avg_percent": p, "cdf_percent": cdf, "mem_kb": m,
         "times_called": n} for t, c, a, p, cdf, m, n in PRIMARY_TYPES]
    assert profile["top_by_memory_use"] == []
    assert (profile["nodes_executed"], profile["nodes_observed"]) == (4, 4)
    assert profile["run_total"]["avg_us"] == 7920.4
    init = log.to_dict()["init_op_profile"]
    assert [(r["node_type"], r["mem_kb"], r["times_called"]) for r in init["run_order"]] == [
        ("ModifyGraphWithDelegate", 10456.0, 1), ("AllocateTensors", 1024.0, 2)]
    assert init["run_total"]["avg_us"] == 32781 and init["nodes_observed"] == 2


def test_op_profile_rows_survive_lost_tabs():
    tabs = parse_benchmark_log(CURRENT_LOG)
    spaces = parse_benchmark_log(CURRENT_LOG.replace("\t", "   "))
    assert spaces.op_profile == tabs.op_profile
    assert spaces.init_op_profile == tabs.init_op_profile


def test_op_profile_csv_output_mode():
    text = "\n".join([
        "count=2 first=2100 curr=1900 min=1900 max=2100 avg=2000 std=100",
        "count=20 first=1800 curr=1750 min=1700 max=1900 avg=1780.5 std=40",
        "Inference timings in us: Init: 5000, First inference: 2100, Warmup (avg): 2000, Inference (avg): 1780.5",
        "Operator-wise Profiling Info for Regular Benchmark Runs:",
        "============================== Top by Computation Time ==============================",
        "node type, first, avg_ms, %, cdf%, mem KB, times called, name",
        "Convolution (NHWC, F32) IGEMM, 1.2, 1.1, 61.5%, 61.5%, 0, 1, conv_a\tconv_b",
        "CONV_2D, 0.7, 0.65, 36.2%, 97.7%, 0, 1, conv_c",
        "",
        "Number of nodes executed: 2",
        "============================== Summary by node type ==============================",
        "node type, count, avg_ms, avg %, cdf %, mem KB, times called",
        "Convolution (NHWC, F32) IGEMM, 1, 1.1, 62.9%, 62.9%, 0, 1",
        "CONV_2D, 1, 0.65, 37.1%, 100%, 0, 1",
        "",
    ])
    profile = parse_benchmark_log(text).op_profile
    assert profile is not None
    assert profile.top_by_computation_time[0] == {
        "node_type": "Convolution (NHWC, F32) IGEMM", "first_ms": 1.2, "avg_ms": 1.1, "percent": 61.5,
        "cdf_percent": 61.5, "mem_kb": 0.0, "times_called": 1, "name": "conv_a\tconv_b"}
    assert [(r["node_type"], r["avg_ms"], r["cdf_percent"]) for r in profile.summary_by_node_type] == [
        ("Convolution (NHWC, F32) IGEMM", 1.1, 62.9), ("CONV_2D", 0.65, 100.0)]


# ----------------------------------------------------------------------------------------------------------------
# line variants


def _logcat_threadtime(level: str) -> str:
    return f"11-21 22:43:01.123  4321  4321 {level[0]} tflite  : "


@pytest.mark.parametrize("prefix", [
    lambda level: "",
    lambda level: f"{level}: ",
    _logcat_threadtime,
    lambda level: f"{level[0]}/tflite  ( 4321): ",
    lambda level: f"{level[0]} tflite/tools/benchmark/benchmark_model.cc:123] ",
    lambda level: f"{level[0]}0000 00:00:1714557600.123456   4321 benchmark_tflite_model.cc:905] ",
    lambda level: "2024-05-01 10:00:00.123456: I tensorflow/lite/tools/benchmark/benchmark_model.cc:181] ",
    lambda level: "[2024-05-01T10:00:00Z] INFO: ",
], ids=["none", "level", "logcat", "logcat-brief", "glog", "absl", "tf-core", "timestamp"])
def test_prefixes_on_every_line_do_not_change_the_result(prefix):
    expected = parse_benchmark_log(render(CURRENT_MESSAGES, prefix=lambda level: "")).to_dict()
    assert parse_benchmark_log(render(CURRENT_MESSAGES, prefix=prefix)).to_dict() == expected
    assert expected == parse_benchmark_log(CURRENT_LOG).to_dict()


def test_scientific_notation():
    text = "\n".join([
        "INFO: count=3 first=1210000 curr=1150000 min=1150000 max=1210000 avg=1.17667e+06 std=26246",
        "INFO: count=10 first=1080000 curr=1050000 min=1040000 max=1080000 avg=1.0588e+06 std=12000",
        "INFO: Inference timings in us: Init: 250321, First inference: 1210000, Warmup (avg): 1.17667e+06, "
        "Inference (avg): 3.55e+06",
        "INFO: Memory footprint delta from the start of the tool (MB): init=9.76562e-05 overall=1.2e+03",
    ])
    log = parse_benchmark_log(text)
    assert log.timings.avg_us == 3.55e6
    assert log.to_dict()["timings"]["avg"] == 3550.0
    assert log.to_dict()["timings"]["warmup_avg"] == pytest.approx(1176.67)
    assert (log.memory.init_mb, log.memory.overall_mb) == (9.76562e-05, 1200.0)


def test_run_line_without_summary_and_all_same_runs():
    text = "\n".join([
        "Initialized session in 3.5ms.",
        "count=1 curr=2000",
        "count=50 curr=1500(all same)",
    ])
    log = parse_benchmark_log(text)
    assert not log.complete
    t = log.timings
    assert (t.count, t.avg_us, t.min_us, t.max_us, t.std_us) == (50, 1500, 1500, 1500, 0)
    assert (t.warmup_count, t.first_us, t.warmup_avg_us, t.init_us) == (1, 2000, 2000, 3500)


def test_stat_keys_in_the_old_order():
    log = parse_benchmark_log("curr=900 count=5 min=800 max=1000 avg=910.5 std=50")
    assert (log.timings.count, log.timings.avg_us, log.timings.min_us) == (5, 910.5, 800)


def test_a_single_run_line_is_matched_to_the_summary():
    text = ("count=8 first=4000 curr=3000 min=3000 max=4000 avg=3200 std=300\n"
            "Inference timings in us: Init: 900, First inference: 4000, Warmup (avg): 3200, Inference (avg): 3100\n")
    t = parse_benchmark_log(text).timings
    assert (t.warmup_count, t.count, t.avg_us, t.std_us) == (8, None, 3100, None)


@pytest.mark.parametrize(("line", "expected_us"), [
    ("Average inference timings in us: Warmup: 83235, Init: 38467, Inference: 79760.9",
     {"warmup_avg_us": 83235, "init_us": 38467, "avg_us": 79760.9}),
    ("Average inference timings in us: Warmup: 581397, Init: 38631, no stats: 479385",
     {"warmup_avg_us": 581397, "init_us": 38631, "avg_us": 479385}),
    ("E/tflite  (12345): Average inference timings in us: Warmup: 1500.5, Init: 2400, Inference: 1320.25"
     "Overall max resident set size/physical footprint = 48.2 MB, total non-mmapped heap size = 12.5 MB, "
     "in-use heap size = 9.75 MB",
     {"warmup_avg_us": 1500.5, "init_us": 2400, "avg_us": 1320.25}),
], ids=["inference", "no-stats", "android-app"])
def test_legacy_summaries(line, expected_us):
    log = parse_benchmark_log(line)
    assert {key: getattr(log.timings, key) for key in expected_us} == expected_us
    assert log.complete and log.errors == ()


def test_android_app_summary_carries_memory_stats():
    line = ("Average inference timings in us: Warmup: 1500.5, Init: 2400, Inference: 1320.25Overall max resident "
            "set size/physical footprint = 48.2 MB, total non-mmapped heap size = 12.5 MB, in-use heap size = 9.75 MB")
    memory = parse_benchmark_log(line).memory
    assert (memory.max_rss_mb, memory.heap_total_mb, memory.heap_in_use_mb) == (48.2, 12.5, 9.75)


def test_dry_run_nan_becomes_null():
    text = "count=0\ncount=0\nInference timings in us: Init: 1234, First inference: 0, Warmup (avg): -nan, " \
           "Inference (avg): nan\n"
    data = parse_benchmark_log(text).to_dict()
    json.dumps(data, allow_nan=False)
    assert (data["timings"]["count"], data["timings"]["avg"], data["timings"]["warmup_avg"]) == (0, None, None)
    assert data["timings"]["init"] == pytest.approx(1.234)


def test_delegate_line_variants_and_failures():
    text = "\n".join([
        "STARTING!",
        "Use gpu: [1]",
        "Use NNAPI: [1]",
        "Loaded model m.tflite",
        "WARNING: GPU acceleration is unsupported on this platform.",
        "INFO: Replacing 31 node(s) with delegate (TfLiteNnapiDelegate) node, yielding 2 partitions.",
        "INFO: Replacing 5 out of 12 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions "
        "for subgraph 1.",
        "Though NNAPI delegate is explicitly applied, the model graph will not be executed by the delegate.",
        "Applied XNNPACK delegate.",
        "count=6 first=140000 curr=75000 min=74000 max=140000 avg=86000 std=24000",
        "count=50 first=74500 curr=74400 min=73900 max=75300 avg=74481.6 std=300",
        "Inference timings in us: Init: 18700, First inference: 140000, Warmup (avg): 86000, Inference (avg): 74481.6",
    ])
    log = parse_benchmark_log(text)
    assert log.delegates.failures == ("GPU acceleration is unsupported on this platform.",)
    assert log.errors == log.delegates.failures
    assert [(p.delegate, p.nodes_replaced, p.nodes_total, p.partitions, p.scope) for p in log.delegates.partitions] == [
        ("TfLiteNnapiDelegate", 31, None, 2, None), ("TfLiteXNNPackDelegate", 5, 12, 1, "subgraph 1")]
    assert [(a.name, a.coverage, a.kernels) for a in log.delegates.applied] == [
        ("NNAPI", "none", None), ("XNNPACK", None, None)]
    assert (log.parameters["use_gpu"], log.parameters["use_nnapi"]) == ("1", "1")


@pytest.mark.parametrize("text", ["", "STARTING!\nGraph: [x.tflite]\nLoaded model x.tflite\n",
                                  "# Inference timings in us: Init: …, First inference: …"])
def test_no_timings_raises(text):
    with pytest.raises(BenchmarkLogError, match="no benchmark_model timings found") as error:
        parse_benchmark_log(text)
    assert isinstance(error.value, HarnessError)
    assert "count=" in str(error.value) and "Average inference timings in us" in str(error.value)


# ----------------------------------------------------------------------------------------------------------------
# noise around a log

NOISE = [
    ["$ adb push benchmark_model /data/local/tmp", "benchmark_model: 1 file pushed, 0 skipped. 35.1 MB/s", ""],
    ["walleye:/data/local/tmp $ ./benchmark_model --graph=m.tflite --num_threads=4", "=== device log ===", "  "],
    ["Connection to device closed.", "", "random chatter 42, nothing to see"],
]


@pytest.mark.parametrize("noise", NOISE, ids=["adb-push", "prompt", "chatter"])
@pytest.mark.parametrize("name", [p.name for p in FIXTURE_LOGS] + ["current"], ids=lambda n: n[:7])
def test_leading_and_trailing_noise_does_not_change_the_result(name, noise):
    text = CURRENT_LOG if name == "current" else (FIXTURES / name).read_text()
    noisy = "\n".join(noise) + "\n" + text.rstrip("\n") + "\n" + "\n".join(noise)
    assert [log.to_dict() for log in parse_benchmark_logs(noisy)] == [
        log.to_dict() for log in parse_benchmark_logs(text)]
