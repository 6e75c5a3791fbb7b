"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, capsys):
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), {})
    printed = capsys.readouterr().out
    expected = re.findall(r"print\(.*\)\s+# (.*)", BLOCKS[index])
    for text in expected:
        if "None" not in text:
            assert text.split(":")[0] in printed


def test_the_compute_provider_table_says_what_each_driver_can_do():
    from drivers import _BUILTIN, DriverType, get_driver

    rows = re.findall(
        r"^\| `(\w+)` \| ([\w, ]+) \| (yes|no) \| (yes|no) \| (yes|no) \| (yes|no) \|",
        README.read_text(),
        re.M,
    )
    table = {row[0]: row[1:] for row in rows}
    assert set(table) == {name for kind, name in _BUILTIN if kind is DriverType.COMPUTE}
    for name, (auth, start_stop, key_pairs, volumes, idempotent) in table.items():
        features = get_driver(DriverType.COMPUTE, name).features
        said = [value == "yes" for value in (start_stop, key_pairs, volumes, idempotent)]
        assert set(auth.split(", ")) == set(features.create_node_auth), name
        assert said == [
            features.start_stop,
            features.key_pairs,
            features.volumes,
            features.idempotent_create,
        ], name
