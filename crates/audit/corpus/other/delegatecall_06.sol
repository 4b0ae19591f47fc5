pragma solidity ^0.6.4;

// Any caller chooses the code that runs with this wallet's storage.
contract PluginWallet {
    address public owner;

    constructor() public {
        owner = msg.sender;
    }

    receive() external payable {}

    function runPlugin(address plugin, bytes calldata data) external {
        (bool ok, ) = plugin.delegatecall(data); // expect: other
        require(ok, "plugin failed");
    }

    function withdraw() external {
        require(msg.sender == owner, "owner");
        msg.sender.transfer(address(this).balance);
    }
}
