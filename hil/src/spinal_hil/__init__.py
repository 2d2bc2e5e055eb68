"""spinal-hil: the hardware-in-the-loop rig, simulated or against a real Pico and arm.

`SimulatedRig` (firmware in MicroPython + simulated STS3215 buses + e-stop + USB link as a pty) and
`ServoBusSimulator` are the entry points; see hil/README.md.
"""

__version__ = "0.1.0"

from spinal_hil.bus_simulator import ServoBusSimulator
from spinal_hil.errors import FirmwareExited, FirmwareNotFound, NeedsSimulation, RigError
from spinal_hil.rig import HardwareRig, SimulatedRig
from spinal_hil.servo_model import ServoFaults, SimulatedServo

__all__ = [
    "FirmwareExited",
    "FirmwareNotFound",
    "HardwareRig",
    "NeedsSimulation",
    "RigError",
    "ServoBusSimulator",
    "ServoFaults",
    "SimulatedRig",
    "SimulatedServo",
    "__version__",
]
