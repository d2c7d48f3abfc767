"""I/O gateways: the Redis store, the ZMQ data plane, capture files, a private Redis, the
upstream transports and allocator tuning."""
