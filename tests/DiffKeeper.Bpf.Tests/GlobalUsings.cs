global using Xunit;
global using DiffKeeper.Bpf;
