"""HTTP and Event Grid entry points: parse, authenticate, hand over to the durable client."""
