"""Tags (标签) as data: definitions, rule tags, third-party imports, history."""
