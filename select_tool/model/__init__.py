"""The model side of the mask tool: opening a result, CAMs in the background, suggested order, retraining rounds."""
