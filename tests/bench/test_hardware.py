"""The machine description a benchmark report carries: enough to tell two CPUs of one name apart."""

from bench.hardware import VECTOR_FLAGS, cpu_facts, parse_cpuinfo
from bench.report import machine_lines

ZEN1_VM = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 1
model name\t: AMD EPYC
cpu MHz\t\t: 1996.249
flags\t\t: fpu sse sse2 avx fma f16c avx2 bmi2

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: Something else
flags\t\t: avx512f avx512_bf16
"""


def test_parse_cpuinfo_reads_the_first_cpu_only():
    facts = parse_cpuinfo(ZEN1_VM)
    assert facts == {"model_name": "AMD EPYC", "family": 23, "model": 1, "mhz": 1996.249,
                     "vector_flags": ["avx2", "fma"]}


def test_parse_cpuinfo_tolerates_missing_and_odd_fields():
    facts = parse_cpuinfo("model name: X\ncpu family: n/a\nflags: amx_bf16 avx512f amx_tile\n")
    assert facts["family"] is None and facts["model"] is None and facts["mhz"] is None
    assert facts["vector_flags"] == ["avx512f", "amx_tile", "amx_bf16"]
    assert parse_cpuinfo("")["model_name"]  # platform's name, or "unknown"


def test_this_machine_is_described():
    facts = cpu_facts()
    assert set(facts["vector_flags"]) <= set(VECTOR_FLAGS)
    assert isinstance(facts["model_name"], str) and facts["model_name"]


def test_report_names_family_clock_and_vector_flags():
    hardware = {"cpu_model": "AMD EPYC", "cpu": parse_cpuinfo(ZEN1_VM), "usable_cpus": 2,
                "logical_cpus": 2, "torch_version": "x", "torch_threads": 2, "python": "3.11",
                "device": "cpu", "matmul": [{"m": 8, "k": 8, "n": 8, "gflops": 35.0}],
                "matmul_gflops_best": 35.0}
    machine = machine_lines(hardware, [])[0]
    assert machine.startswith("- Machine: AMD EPYC (family 23, model 1, 2.0 GHz; avx2 fma), 2 ")
    del hardware["cpu"]  # a hardware.json written before the field existed
    assert machine_lines(hardware, [])[0].startswith("- Machine: AMD EPYC, 2 usable cores")
