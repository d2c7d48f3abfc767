"""The four components as asyncio services: controller, ingester, worker, reducer, on a
common component base, and the structured logging they share."""
