"""Device drivers, emulators and models: one per file."""
