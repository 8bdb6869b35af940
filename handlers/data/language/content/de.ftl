# Deutsch
