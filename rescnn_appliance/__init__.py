"""rescnn-appliance: a Raspberry Pi music player that watches the listener's face.

The package imports anywhere: hardware libraries (picamera2, systemd, vlc, gpiozero) are imported
only inside the device modules that use them.
"""

__version__ = "0.1.0"
