"""Robot descriptions every part shares: LeRobot's robot types and the joint/feature names of an SO-101.

Imported by the protocol's golden vectors, the recorder, the server's demo policy and the edge (MCU, inference).
"""

from __future__ import annotations

SO101_ROBOT_TYPE = "so101_follower"

#: The six joints of an SO-101 arm in bus order (servo ids 1..6), as LeRobot names its motors.
SO101_JOINTS: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)

#: State and action feature names exactly as LeRobot names them, in the order of a policy's columns.
SO101_FEATURE_NAMES: tuple[str, ...] = tuple(f"{joint}.pos" for joint in SO101_JOINTS)
