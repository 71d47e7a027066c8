"""The TensorFlow Lite Micro target: the same model under TFLM's interpreter.
The LCE ops and the fused GLT stem are TFLM kernels in the C++ files of this
folder (over the C kernel cores of deploy/runtime; their parameter arithmetic
in ``kernel_params.cc``). ``library.py`` finds the user's TFLM tree and library,
``ops.py`` lists the ops and sizes the arena, ``rewrite.py`` rewrites the
flatbuffer for the kernels, and ``target.py`` renders ``firmware_templates/tflm/``
and builds the firmware (``python deploy/build.py --runtime tflm``).
"""
