"""Shared domain package: asset model, wire format, store interface and settings.

Every room (edge, ingest, kpi, api, simulators) imports from here; this package imports none of them.
"""
