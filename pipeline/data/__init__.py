"""Stage `prepare`: official files -> verified raw folder -> prepared arrays (one module per dataset in sources/)."""
