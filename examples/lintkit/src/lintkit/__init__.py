"""lintkit: small text helpers."""
