"""Edge room: the gateway agent that reads devices, buffers canonical samples on disk and forwards them.

OPC UA machines (subscriptions) and MQTT energy meters feed one durable SQLite buffer; the forwarder
publishes batches from it to the platform broker with QoS 1 and deletes only what the broker
acknowledged. ``EdgeAgent`` composes the parts.
"""
