"""Stage 2 of deploy/: the kernel calls become C. A memory plan places every
activation tensor in one static arena (``memory_plan.py``), and the model
templates (``firmware_templates/model/``) render the schedule, the plan and the
constant arrays into ``model.h`` / ``model.c`` (``render.py``).

```python
from deploy import codegen
gen = codegen.generate(flatbuffer.read_model("model.tflite"), class_names=["non_person", "person"])
```
"""
from deploy.codegen import memory_plan  # noqa: F401
from deploy.codegen.render import RUNTIME_DIR, TEMPLATE_DIR, CodegenError, GeneratedModel, generate

__all__ = ["GeneratedModel", "CodegenError", "generate", "memory_plan", "RUNTIME_DIR", "TEMPLATE_DIR"]
