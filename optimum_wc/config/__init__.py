"""What a user asks for: modes and enums, scopes, advanced parameters, settings, WeightCompressionConfig."""
