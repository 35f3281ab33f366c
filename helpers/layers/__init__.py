"""The layer store: one step's output as a layer, its record, the overlay mounter."""
