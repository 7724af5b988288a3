"""The release check (DESIGN §8): does the evidence say this workflow may leave the sandbox?"""
