"""A researcher's own model, registered with lthlib (the tests import this file by its path, as a params
file's ``model_module: tests/own_model_example.py`` does)."""
import torch.nn as nn
import torch.nn.functional as F

from lthlib.ownmodels import register_model


@register_model("own_tiny", input=(1, 28), about="two convs and two linear layers (a test's own model)")
@register_model("own_tiny_fc", input=(1, 28), prunable=["fc1.weight"])
class OwnTiny(nn.Module):
    """conv1 (the stem) -> conv2 -> fc1 -> fc2 (the classifier); by the default rule conv2 and fc1 are
    pruned, ``own_tiny_fc`` prunes fc1 only."""

    def __init__(self, in_channels=1, num_classes=10, input_size=28):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * (input_size // 4) ** 2, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))
