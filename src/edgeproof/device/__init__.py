"""The device side: what runs on the target (a Jetson runner, or ``cpu-ci``).

Python 3.8+, and only numpy, an image decoder, PyYAML and onnxruntime(-gpu): no torch, no
ultralytics, no DVC, no MLflow, no pydantic.
"""
