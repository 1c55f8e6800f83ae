def main() -> None:
    from bigalpha_tui.core import clock
    print(clock.X)
