"""Names of the whole-model configurations the analysis measures, shared by the analysis and its
end-to-end phase."""

#: The whole-model configurations measured end to end (label -> precision tier, range algorithm); a
#: tier is the toolkit's 8-bit ("uint8") or 16-bit ("int16") precision, see app.quant.toolkits.
CONFIGS: dict[str, tuple[str, str]] = {
    "uint8/minmax": ("uint8", "minmax"),
    "uint8/kl": ("uint8", "kl"),
    "int16/minmax": ("int16", "minmax"),
}
HYBRID = "hybrid"
#: The data and the float outputs the end-to-end phase may hold, so the curve and the knee do not run the
#: float model again (19 photos at 640x640 and PP-OCRv4's output: about 125 MB)
REFERENCE_BYTES = 256 * 2**20
