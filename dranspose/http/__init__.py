"""The HTTP apps: controller API helpers, reducer API, HDF5 REST for h5pyd/silx, dashboard,
logs, metrics, access policy and the 4xx error shape."""
