"""Exporters of the base codec: the C++ weight blob (`blob`, with its CDF tables `cdf_tables`), the ONNX
synthesis (`onnx_export`) and model bundle folders (`bundle_writer`; the reader is :mod:`pymars.bundles`)."""
