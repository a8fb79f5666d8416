namespace DiffKeeper.Shim.Tests;
public class Probe { [Xunit.Fact] public void P() => Xunit.Assert.Equal("x", DiffKeeper.Shim.Cli.ShimFlags.Parse(["-id","x","start"]).Id); }
