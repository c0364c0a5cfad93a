"""Simulated shop floor: OPC UA servers for CNC machines and robots, MQTT energy meters, ground truth.

* ``behaviour`` — pure, seeded model of what a machine does next (no I/O, no clock reads).
* ``opcua_machine`` — one asyncua server per machine exposing the contract's address space.
* ``meter`` — MQTT electricity meter integrating the power of the machines it covers.
* ``ground_truth`` — what really happened, queried with the platform's [start, end) windows.
* ``runner`` — ``Simulator``: starts it all, drives it in simulated time, freezes it for tests.
* ``edgeconfig`` — edge-agent sources (core.settings models) for the simulated factory.
"""
