"""Reports from run directories: `compare` runs several configurations on equal terms and writes
one comparison (Markdown, HTML, JSON and a picture of samples side by side)."""
