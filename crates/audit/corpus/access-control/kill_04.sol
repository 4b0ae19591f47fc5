pragma solidity ^0.4.24;

// Anyone can destroy the wallet and take what is left.
contract SimpleWallet {
    address public owner;

    constructor() public {
        owner = msg.sender;
    }

    function () public payable {}

    function destroy() public {
        selfdestruct(msg.sender); // expect: access-control
    }
}
