"""HE machinery: parameters, layer specs and op counts, the cost-model and backend
interfaces, the layer executor, the latency model, calibration and layer verification."""
