"""tf_records_parser package."""
