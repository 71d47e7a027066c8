"""The TensorFlow Lite Micro target: the same model under TFLM's interpreter.
The LCE ops and the fused GLT stem are TFLM kernels in the C++ files of this
folder (over the C kernel cores of deploy/runtime); ``target.py`` rewrites the
flatbuffer for them, renders ``firmware_templates/tflm/`` and builds the
firmware against a TFLM tree (``python deploy/build.py --runtime tflm``).
"""
