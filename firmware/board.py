"""Pin-out of the servo controller board (rp2 only); edit to match your wiring, then flash again.

Read by main.py on the Pico; the unix port takes the same choices from its command line.
"""

# Follower arm bus: UART0 on GP0 (TX) / GP1 (RX) at 1 Mbps.
FOLLOWER_UART = 0
FOLLOWER_TX = 0
FOLLOWER_RX = 1
FOLLOWER_DIR = None  # GPIO driving a transceiver's direction pin, or None

# Leader arm bus: UART1 on GP4 (TX) / GP5 (RX); set LEADER_UART = None without a second bus.
LEADER_UART = 1
LEADER_TX = 4
LEADER_RX = 5
LEADER_DIR = None

# True when TX and RX share the wire through a resistor (the UART hears its own bytes).
ECHO = False

# E-stop: a normally-closed button between this pin and GND (pull-up on); None disables the input.
ESTOP_PIN = 15
ESTOP_ACTIVE_HIGH = True

LED_PIN = "LED"
BOARD_NAME = "pico"
RATE_HZ = 200
SCAN_FIRST = 1
SCAN_LAST = 12
BUS_TIMEOUT_US = 3000
