"""The boards and the tools that build and run firmware for them.

    <name>.toml    one board as data: core, memory, console UART, LED, counter, emulator
    board.py       Board, load_board, known_boards (the TOML files loaded and checked)
    toolchain.py   where arm-none-eabi-gcc, qemu-system-arm and renode are on this machine
"""
from deploy.boards.board import Board, BoardError, known_boards, load_board, load_board_file

__all__ = ["Board", "BoardError", "known_boards", "load_board", "load_board_file"]
