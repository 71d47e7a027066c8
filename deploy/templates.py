"""Where deploy/ finds its files, and the one Jinja environment that renders
every template under ``firmware_templates/`` (model, harness, host, renode,
tflm): strict about undefined names, trailing newline kept, block tags on
their own line leave no blank line (``trim_blocks``, ``lstrip_blocks``).

```python
from deploy import templates
text = templates.render("renode/machine.resc.j2", board=..., elf=...)
```
"""
from __future__ import annotations

import functools
from pathlib import Path

import jinja2

__all__ = ["ROOT", "TEMPLATE_DIR", "RUNTIME_DIR", "environment", "render"]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "firmware_templates"
RUNTIME_DIR = ROOT / "deploy" / "runtime"


def _c_string(s) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_join(values, fmt: str, sep: str = ", ") -> str:
    """``fmt % v`` for each value, joined: ``[1, 2] | format_join('0x%02x')`` -> ``0x01, 0x02``."""
    return sep.join(fmt % v for v in values)


@functools.lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    """The environment (built once); stages add their own filters by name."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["c_string"] = _c_string
    env.filters["format_join"] = _format_join
    env.filters["ord_port"] = lambda letter: ord(str(letter).upper()) - ord("A")
    return env


def render(template: str, /, **context) -> str:
    """Render ``firmware_templates/<template>`` with ``context``."""
    return environment().get_template(template).render(context)
