"""Chapter 8's generation under sparse rewards."""
