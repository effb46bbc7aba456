"""The interface every Table 1 model shares.

A model takes a stacked sequence ``X`` of shape (T, B, 1, H, W) and returns
predictions ``Y`` of shape (T - first, B, 1, H, W) where ``Y[k]`` is the
prediction of frame ``first + k + 1`` made from frames ``0 .. first + k``.
Recurrent models predict from the first frame on (``first = 0``); AE-Conv needs a
window of 10 frames (``first = 9``).

Training feeds ``X[:-1]`` and compares with ``targets(X)``; evaluation ("next
frame after 10 inputs") feeds frames 0..9 and reads the last prediction.
"""


class VideoPredictor:
    """Mixin for the models: where predictions start and what they are compared with."""
    #: index of the first input frame after which the model makes a prediction
    first = 0

    @classmethod
    def typename(cls):
        return "models." + cls.__name__

    def targets(self, frames):
        """The frames that the predictions for input ``frames[:-1]`` should match."""
        return frames[self.first + 1:]

    def penalty(self):
        """Extra loss terms injected in backward (the flow smoothness), for logging."""
        return 0.0
