# Français
