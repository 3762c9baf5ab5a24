"""`python -m mesh_assets.cli`."""

from mesh_assets.cli.app import main

main()
