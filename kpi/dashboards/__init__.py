"""Grafana dashboards and alert rules as code, in Simplified Chinese or English.

The rooms of this package:

* ``model``: typed descriptions of dashboards, panels, queries, variables and alert rules, every
  human-facing word a ``Text`` with both languages, rendered to Grafana's JSON by language;
* ``queries``: InfluxQL over the KPI rollups and raw series (ratios from sums, never averaged);
* ``words``: the words of both languages and the units;
* ``catalog``: the five dashboards; ``alerts``: the alert rules;
* ``build``: provisioning files for ``deploy/grafana/`` (``factory grafana build``);
* ``push``: the same objects into a running Grafana through grafana-client (``factory grafana push``);
* ``feed``: the indicators InfluxQL cannot derive from rollups (asset-model rates, kgce and CO₂ with
  dated factors, value added, shifts, certification rules), written into the store for the dashboards.
"""
