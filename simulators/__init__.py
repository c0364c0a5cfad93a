"""Simulated shop floor: OPC UA machines, MQTT meters, scenarios, ground truth, history (docs/simulators.md).

* ``scenario`` — scenario files (schema, loader, shift calendar), shared by live runs and history.
* ``behaviour`` — pure, seeded event model of one machine (no I/O, no clock reads).
* ``companion`` — the machines' address spaces as data (OPC 40501 / 40010 shapes) and their values.
* ``opcua_machine`` — ``MachineServer``: asyncua server(s) exposing them; restarts on demand.
* ``meter`` — electricity, gas and water meters: what they measure, payload templates, MQTT publisher.
* ``clock`` — model time vs. stamp time in accelerated runs.
* ``ground_truth`` — what really happened, queried with the platform's [start, end) windows.
* ``runner`` — ``Simulator``: starts it all, drives it live, freezes it for tests.
* ``edgeconfig`` — edge-agent sources (core.settings models) for the simulated factory.
* ``history*`` — the history generator (``factory history``, docs/history.md).
"""
