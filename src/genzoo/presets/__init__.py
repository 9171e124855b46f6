"""YAML presets: sensible defaults per model name (`genzoo train NAME`)."""
