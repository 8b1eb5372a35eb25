"""Local fakes of outside HTTP APIs, written from their documentation, served over real HTTP."""
