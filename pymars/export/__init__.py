"""Exporters: the C++ weight blob (`blob`), the ONNX synthesis (`onnx_export`) and model bundles (`bundle`)."""
