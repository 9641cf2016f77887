// What a model is (architecture tables, ModelSpec, ModelError) is part of every IngotModel user's vocabulary.
@_exported import IngotArchitectures
