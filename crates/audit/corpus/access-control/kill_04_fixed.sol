pragma solidity ^0.4.24;

// Only the owner may destroy the wallet.
contract SimpleWallet {
    address public owner;

    modifier onlyOwner() {
        require(msg.sender == owner);
        _;
    }

    constructor() public {
        owner = msg.sender;
    }

    function () public payable {}

    function destroy() public onlyOwner {
        selfdestruct(owner);
    }
}
