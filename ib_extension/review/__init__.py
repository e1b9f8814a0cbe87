"""The reviewer's side: reading session records, analytics, provenance, replay and
exports. Pure functions over records fetched from the service."""
