"""The LeadStore port and its adapters (memory, SQLite, Firestore)."""
