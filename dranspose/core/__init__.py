"""Pure models and algorithms: ids, events, parameters, coordination messages, the trigger
map and its assigner, the scan account, backpressure, statistics and the payload calling
policy. No sockets, Redis, files or clocks."""
